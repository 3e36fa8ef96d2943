/** Canned responses. */
import { notYet } from './not-yet';

export const listCannedRoute = notYet('canned responses');
export const createCannedRoute = notYet('canned responses');
export const deleteCannedRoute = notYet('canned responses');
